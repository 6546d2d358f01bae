// Every role the relay needs, and nothing more. Names are guid(scope, principal, role) so a
// redeploy finds the same assignments. New assignments can take up to 30 minutes to take
// effect: until then uploads answer 403 and the relay parks them (docs/deploy.md).
param appPrincipalId string

@description('Developer (or pipeline) to grant data access for local runs against the deployed resources; empty: none.')
param developerPrincipalId string = ''
param developerPrincipalType string = 'User'

param dataCollectionRuleName string
param storageAccountName string
param blobEventsDeadLetterContainerName string
param eventHubNamespaceName string
param eventHubName string
param applicationInsightsName string
@description('Workspace created by this deployment; empty when an existing workspace is used.')
param logAnalyticsName string
param keyVaultName string

@description('System-assigned identity of the storage account\'s Event Grid system topic (writes undeliverable events).')
param blobEventsTopicPrincipalId string

// Built-in role definition ids (the same in every cloud).
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var eventHubsDataReceiverRoleId = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
var eventHubsDataSenderRoleId = '2b629674-e913-4c01-ae53-ef4638d8f975'
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var logAnalyticsReaderRoleId = '73c42c96-874c-492b-b04d-ab87d138a893'

var developerEnabled = !empty(developerPrincipalId)

resource dataCollectionRule 'Microsoft.Insights/dataCollectionRules@2023-03-11' existing = {
  name: dataCollectionRuleName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource blobEventsDeadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: blobEventsDeadLetterContainerName
}

resource eventHubNamespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubNamespaceName
}

resource eventHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: eventHubNamespace
  name: eventHubName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// --- The relay's identity -------------------------------------------------------------

// Upload to the Logs Ingestion API: without it every upload answers 403 OperationFailed.
resource appDcrPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataCollectionRule.id, appPrincipalId, monitoringMetricsPublisherRoleId)
  scope: dataCollectionRule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Blobs: host storage, the Flex Consumption deployment package, blob trigger receipts and
// reads, parked and dead-lettered payloads. Owner, not Contributor: the host manages leases
// and container-level operations of the blob trigger.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Queues: the relay-poison queue trigger, and the blob trigger's poison queue.
resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageQueueDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Tables: AzureWebJobsStorage__tableServiceUri, for host features that keep state in tables.
resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageTableDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Read the relay's hub only (checkpoints live in host storage).
resource appEventHubReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventHub.id, appPrincipalId, eventHubsDataReceiverRoleId)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataReceiverRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Send telemetry to Application Insights, which has local (key) auth off.
resource appInsightsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, monitoringMetricsPublisherRoleId)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Resolve Key Vault references (GITHUB_WEBHOOK_SECRET).
resource appKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, appPrincipalId, keyVaultSecretsUserRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- Event Grid system topic --------------------------------------------------------------

// Write events it could not deliver to the blob trigger into their dead-letter container only.
resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(blobEventsDeadLetterContainer.id, blobEventsTopicPrincipalId, storageBlobDataContributorRoleId)
  scope: blobEventsDeadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
    principalId: blobEventsTopicPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- The developer, for local runs (relay send/replay/poison against Azure) ---------------

resource developerDcrPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerEnabled) {
  name: guid(dataCollectionRule.id, developerPrincipalId, monitoringMetricsPublisherRoleId)
  scope: dataCollectionRule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: developerPrincipalId
    principalType: developerPrincipalType
  }
}

resource developerBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerEnabled) {
  name: guid(storage.id, developerPrincipalId, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: developerPrincipalId
    principalType: developerPrincipalType
  }
}

resource developerQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerEnabled) {
  name: guid(storage.id, developerPrincipalId, storageQueueDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: developerPrincipalId
    principalType: developerPrincipalType
  }
}

// Send test events to the hub and read them back.
resource developerEventHubSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerEnabled) {
  name: guid(eventHub.id, developerPrincipalId, eventHubsDataSenderRoleId)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataSenderRoleId)
    principalId: developerPrincipalId
    principalType: developerPrincipalType
  }
}

resource developerEventHubReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerEnabled) {
  name: guid(eventHub.id, developerPrincipalId, eventHubsDataReceiverRoleId)
  scope: eventHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataReceiverRoleId)
    principalId: developerPrincipalId
    principalType: developerPrincipalType
  }
}

// Query the custom tables to see rows land. Only on a workspace this deployment created: access to an
// existing (shared, e.g. Sentinel) workspace is its owners' to give, not a side effect of deploying the relay.
resource developerLogAnalyticsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerEnabled && !empty(logAnalyticsName)) {
  name: guid(logAnalytics.id, developerPrincipalId, logAnalyticsReaderRoleId)
  scope: logAnalytics
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReaderRoleId)
    principalId: developerPrincipalId
    principalType: developerPrincipalType
  }
}

// Set and rotate the webhook secrets without putting them in a deployment.
resource developerKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerEnabled) {
  name: guid(keyVault.id, developerPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
    principalId: developerPrincipalId
    principalType: developerPrincipalType
  }
}
