// The Event Grid subscription that calls the blob trigger: BlobCreated in the ingest container
// -> the blobs extension webhook of the function app, addressed to blob_ingest.
//
// Deployed only once the code is (main.bicep, blobEventSubscriptionEnabled): Event Grid
// validates a webhook when the subscription is created, and only a running blob_ingest answers.
param systemTopicName string
param functionAppName string
param blobFunctionName string
param blobContainerName string
param storageAccountName string
param deadLetterContainerName string

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// The host's keys; blobs_extension is the system key of the blobs webhook.
resource functionAppHost 'Microsoft.Web/sites/host@2024-04-01' existing = {
  parent: functionApp
  name: 'default'
}

resource blobCreatedSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  // Event Grid names allow letters, digits and '-' only.
  name: '${replace(blobFunctionName, '_', '-')}-blob-created'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        // https, on the app's own host name (right suffix in every cloud).
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${blobFunctionName}&code=${functionAppHost.listKeys().systemKeys.blobs_extension}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Only blobs of the ingest container; the poison store lives in the same account.
      subjectBeginsWith: '/blobServices/default/containers/${blobContainerName}/blobs/'
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    // After a day of failed deliveries the event (which names the blob) is kept, not dropped.
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output name string = blobCreatedSubscription.name
