// The relay: a Python 3.11 function app on Flex Consumption that runs as the user-assigned
// managed identity and reads its package from the storage account with that identity.
param name string
param planName string
param location string
param tags object = {}

@description('azd service name of the app (azure.yaml): azd finds the app by this tag.')
param serviceName string = 'api'

param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 100

@description('Spread instances over availability zones (only in regions where Flex Consumption offers it; needs zone-redundant storage).')
param zoneRedundant bool = false

@description('The relay\'s app settings (main.bicep); merged with the host settings below.')
param appSettings object

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Settings the Functions host itself reads. Flex Consumption takes the runtime from
// functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION must not be set.
var hostAppSettings = {
  // Host storage through the identity (keys are off on the account).
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  // Application Insights has local auth off: telemetry is sent with the identity's Entra token.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy is the zoneRedundant parameter: Flex Consumption offers it only in some regions, so turning it on by default would break `azd up` elsewhere.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the relay is a public webhook receiver (GitHub, Event Grid, SaaS senders); requests are authenticated by function keys and signatures.
  // checkov:skip=CKV_AZURE_17: webhook senders (GitHub, Event Grid, SaaS alerting) cannot present client certificates.
  // checkov:skip=CKV_AZURE_212: the check reads siteConfig.numberOfWorkers, which Flex Consumption does not use: it scales instances per demand (functionAppConfig.scaleAndConcurrency).
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support the platform health check; GET /api/health is there for external probes.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references (GITHUB_WEBHOOK_SECRET) resolve with the app's identity.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(union(hostAppSettings, appSettings)): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output uri string = 'https://${functionApp.properties.defaultHostName}'
