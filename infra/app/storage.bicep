// The function app's storage account: host storage (AzureWebJobsStorage), the deployment
// package, the `ingest` container the blob trigger reads, and the poison store (queue of
// parked batches, containers of parked and dead-lettered payloads).
param name string
param location string
param tags object = {}
param containerNames array
param queueNames array

@allowed([
  'Standard_ZRS'
  'Standard_GZRS'
  'Standard_LRS'
  'Standard_GRS'
])
@description('Replication. Zone-redundant by default; Standard_LRS in regions without availability zones.')
param skuName string = 'Standard_ZRS'

@description('Days a deleted blob or container can be restored: parked payloads are the only copy of data that did not land.')
param deleteRetentionDays int = 7

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: default Allow because Flex Consumption without VNet integration, Event Grid and `azd deploy` reach the account over its public endpoint; access is Entra ID only (shared keys off).
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35; private endpoints belong to the private-networking variant (docs/deploy.md).
  // checkov:skip=CKV_AZURE_206: zone-redundant (ZRS) by default, chosen over geo-replication: the relay runs in one region and never reads a paired-region copy; skuName=Standard_GZRS gives both.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    // The poison store holds the only copy of data that did not land yet.
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Identity only: the app, the deployment and Event Grid use Entra ID, never account keys.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Flex Consumption without VNet integration and the webhook senders reach storage over
      // its public endpoint; see docs/deploy.md, "Private networking".
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    sasPolicy: {
      // No account keys means no account SAS; this bounds user-delegation SAS the developers make.
      sasExpirationPeriod: '0.01:00:00'
      expirationAction: 'Log'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

output name string = storage.name
output id string = storage.id
// The account's own endpoints (https, with the suffix of the cloud it lives in).
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
