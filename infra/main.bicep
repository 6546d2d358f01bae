// The ingestion relay in one deployment: `azd up` provisions this file, then deploys the
// function app (service `api` in azure.yaml).
//
// Everything connects with the app's user-assigned managed identity: no keys, no connection
// strings (storage has shared keys off, Event Hubs and Application Insights have local auth
// off). Endpoints come from the resources themselves or from environment(), so the same
// template deploys to the public cloud, Azure China and Azure US Government.
//
// Keep this file parseable by pycep-parser (what checkov and tests/infra read): no lambdas
// other than filter(), no user-defined types, no nullable types, no deployer().
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer Flex Consumption, and the DCR must share its region with the workspace.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the developer running azd (azd fills AZURE_PRINCIPAL_ID). Empty: no developer role assignments.')
param principalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principal principalId is (ServicePrincipal when a pipeline runs azd).')
param principalType string = 'User'

// Every resource name can be overridden; empty means "derive it from abbreviations.json and the suffix".
param resourceGroupName string = ''
param identityName string = ''
param storageAccountName string = ''
param appServicePlanName string = ''
param functionAppName string = ''
param eventHubNamespaceName string = ''
param logAnalyticsName string = ''
param applicationInsightsName string = ''
param dataCollectionRuleName string = ''
param dataCollectionEndpointName string = ''
param keyVaultName string = ''
param blobEventsSystemTopicName string = ''

@description('Event hub the Event Hub trigger reads (RELAY_EVENTHUB_NAME).')
param eventHubName string = 'relay-events'

@description('Consumer group of the relay on that hub: its own, so other readers do not steal its partitions.')
param eventHubConsumerGroupName string = 'relay'

@minValue(1)
@maxValue(32)
@description('Partitions of the event hub: the most Event Hub trigger instances that can read it at once.')
param eventHubPartitionCount int = 4

@description('Container the blob trigger watches (RELAY_BLOB_CONTAINER).')
param blobContainerName string = 'ingest'

@description('Queue of parked batches (RELAY_POISON_QUEUE).')
param poisonQueueName string = 'relay-poison'

@description('Container of parked payloads (RELAY_POISON_CONTAINER).')
param poisonContainerName string = 'relay-poison'

@description('Container of dead-lettered payloads (RELAY_DEADLETTER_CONTAINER).')
param deadLetterContainerName string = 'relay-deadletter'

@minValue(1)
@description('Replays before a parked batch is dead-lettered (RELAY_MAX_REPLAYS).')
param maxReplays int = 5

@minValue(0)
@description('Minutes from a batch\'s first failure during which a 403 (role not yet propagated, up to 30 minutes) is replayed instead of dead-lettered (RELAY_FORBIDDEN_GRACE_MINUTES); 0 dead-letters at once.')
param forbiddenGraceMinutes int = 30

@allowed([
  'public'
  'china'
  'usgov'
])
@description('Cloud of the Logs Ingestion token scope (RELAY_CLOUD); follows the cloud this template is deployed to.')
param relayCloud string = environment().name =~ 'AzureChinaCloud' ? 'china' : (environment().name =~ 'AzureUSGovernment' ? 'usgov' : 'public')

@description('Also deploy a data collection endpoint and send through it (needed for private link); off: the DCR\'s own endpoint.')
param dataCollectionEndpointEnabled bool = false

@description('Create the Event Grid subscription that feeds the blob trigger. Event Grid validates the webhook when the subscription is created, so this needs the code deployed first: the postdeploy hook in azure.yaml turns it on.')
param blobEventSubscriptionEnabled bool = false

// Required: relay.yaml's github route verifies signatures with it, and the relay refuses to load
// routes whose ${VARIABLE} is empty. azd asks for it when GITHUB_WEBHOOK_SECRET is not set.
@secure()
@minLength(16)
@description('Secret of the GitHub webhook (X-Hub-Signature-256), at least 16 characters. Stored in Key Vault; the app reads it through a Key Vault reference.')
param githubWebhookSecret string

@allowed([
  512
  2048
  4096
])
@description('Memory of one Flex Consumption instance.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most instances Flex Consumption scales the relay to.')
param maximumInstanceCount int = 100

@description('Spread the function app over availability zones (only where Flex Consumption offers it; keep zone-redundant storage).')
param zoneRedundant bool = false

@allowed([
  'Standard_ZRS'
  'Standard_GZRS'
  'Standard_LRS'
  'Standard_GRS'
])
@description('Replication of the storage account (poison store included). Standard_LRS in regions without availability zones.')
param storageSkuName string = 'Standard_ZRS'

@minValue(30)
@maxValue(730)
@description('Days the workspace keeps rows (the custom tables inherit it).')
param logRetentionInDays int = 30

@description('Resource id of an existing Log Analytics workspace (azd: EXISTING_LOG_ANALYTICS_WORKSPACE_ID). Set: no workspace is created, the tables go into it and the DCR into its region. Empty: a new workspace.')
param existingLogAnalyticsWorkspaceId string = ''

@description('Action group (resource id) the relay\'s alert rules notify; empty: they fire in the portal only.')
param alertActionGroupId string = ''

@minValue(5)
@description('Alert when a parked batch is older than this many minutes (beyond the 30-minute 403 window and back-off).')
param parkedAgeAlertMinutes int = 60

// The DCR definition the relay validates against locally and the emulator serves: the very
// same file is deployed, so what passes `relay validate` is what Azure accepts.
var relayDcrDefinition = loadJsonContent('dcr/relay.json')
// Plan and retention per table, beside the DCR file (shared/tables.py).
var relayTablePlans = loadJsonContent('dcr/relay.tables.json')

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var apiServiceName = 'api'

// The blob function in function_app.py; Event Grid calls the blobs extension webhook with its name.
var blobFunctionName = 'blob_ingest'

var resolvedFunctionAppName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}relay-${resourceToken}'
// Flex Consumption runs the package it finds in this container.
var deploymentContainerName = 'app-package-${take(toLower(resolvedFunctionAppName), 32)}-${take(resourceToken, 7)}'
// Event Grid parks events it could not deliver here, so a blob that never reached the relay is still findable.
var blobEventsDeadLetterContainerName = 'blob-events-deadletter'
var githubWebhookSecretName = 'github-webhook-secret'
// The blob trigger's per-blob progress (shared/blob_ingest.py CHECKPOINT_CONTAINER), so a resumed run never re-sends.
var blobCheckpointContainerName = 'relay-checkpoints'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: !empty(identityName) ? identityName : '${abbrs.managedIdentityUserAssignedIdentities}relay-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: !empty(logAnalyticsName) ? logAnalyticsName : '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: !empty(applicationInsightsName) ? applicationInsightsName : '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    existingWorkspaceId: existingLogAnalyticsWorkspaceId
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    containerNames: [
      deploymentContainerName
      blobContainerName
      poisonContainerName
      deadLetterContainerName
      blobEventsDeadLetterContainerName
      blobCheckpointContainerName
    ]
    queueNames: [
      poisonQueueName
    ]
  }
}

module eventHubs 'app/eventhubs.bicep' = {
  name: 'eventhubs'
  scope: rg
  params: {
    namespaceName: !empty(eventHubNamespaceName) ? eventHubNamespaceName : '${abbrs.eventHubNamespaces}${resourceToken}'
    location: location
    tags: tags
    eventHubName: eventHubName
    consumerGroupName: eventHubConsumerGroupName
    partitionCount: eventHubPartitionCount
  }
}

// Custom tables, the DCR (kind Direct) and, when asked for, a DCE.
module ingestion 'app/ingestion.bicep' = {
  name: 'ingestion'
  scope: rg
  params: {
    location: monitoring.outputs.logAnalyticsLocation
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
    dcrDefinition: relayDcrDefinition
    tablePlans: relayTablePlans.tables
    dataCollectionRuleName: !empty(dataCollectionRuleName) ? dataCollectionRuleName : '${abbrs.insightsDataCollectionRules}relay-${resourceToken}'
    dataCollectionEndpointEnabled: dataCollectionEndpointEnabled
    dataCollectionEndpointName: !empty(dataCollectionEndpointName) ? dataCollectionEndpointName : '${abbrs.insightsDataCollectionEndpoints}relay-${resourceToken}'
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    githubWebhookSecretName: githubWebhookSecretName
    githubWebhookSecret: githubWebhookSecret
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: resolvedFunctionAppName
    planName: !empty(appServicePlanName) ? appServicePlanName : '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    serviceName: apiServiceName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    zoneRedundant: zoneRedundant
    // The relay's own settings (shared/settings.py APP_SETTINGS). tests/infra proves that every
    // setting the code reads is here or deliberately left out, and that nothing here is dead.
    appSettings: {
      AZURE_CLIENT_ID: identity.outputs.clientId
      RELAY_CREDENTIAL: 'managed_identity'
      RELAY_CLOUD: relayCloud
      LOGS_INGESTION_ENDPOINT: ingestion.outputs.logsIngestionEndpoint
      DCR_IMMUTABLE_ID: ingestion.outputs.immutableId
      // A Key Vault reference, never the secret itself.
      GITHUB_WEBHOOK_SECRET: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${githubWebhookSecretName})'
      RelayStorage__blobServiceUri: storage.outputs.blobEndpoint
      RelayStorage__queueServiceUri: storage.outputs.queueEndpoint
      RelayStorage__credential: 'managedidentity'
      RelayStorage__clientId: identity.outputs.clientId
      EventHubConnection__fullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
      EventHubConnection__credential: 'managedidentity'
      EventHubConnection__clientId: identity.outputs.clientId
      RELAY_BLOB_CONTAINER: blobContainerName
      RELAY_EVENTHUB_NAME: eventHubs.outputs.eventHubName
      RELAY_EVENTHUB_CONSUMER_GROUP: eventHubs.outputs.consumerGroupName
      RELAY_POISON_QUEUE: poisonQueueName
      RELAY_POISON_CONTAINER: poisonContainerName
      RELAY_DEADLETTER_CONTAINER: deadLetterContainerName
      RELAY_MAX_REPLAYS: string(maxReplays)
      RELAY_FORBIDDEN_GRACE_MINUTES: string(forbiddenGraceMinutes)
    }
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    developerPrincipalId: principalId
    developerPrincipalType: principalType
    dataCollectionRuleName: ingestion.outputs.dataCollectionRuleName
    storageAccountName: storage.outputs.name
    blobEventsDeadLetterContainerName: blobEventsDeadLetterContainerName
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.eventHubName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    keyVaultName: keyVault.outputs.name
    blobEventsTopicPrincipalId: blobEvents.outputs.principalId
  }
}

// The storage account's Event Grid system topic exists from the first provision ...
module blobEvents 'app/blob-events.bicep' = {
  name: 'blob-events'
  scope: rg
  params: {
    name: !empty(blobEventsSystemTopicName) ? blobEventsSystemTopicName : '${abbrs.eventGridSystemTopics}${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
  }
}

// ... its subscription only once blob_ingest is deployed (see blobEventSubscriptionEnabled).
module blobEventSubscription 'app/blob-event-subscription.bicep' = if (blobEventSubscriptionEnabled) {
  name: 'blob-event-subscription'
  scope: rg
  params: {
    systemTopicName: blobEvents.outputs.name
    functionAppName: api.outputs.name
    blobFunctionName: blobFunctionName
    blobContainerName: blobContainerName
    storageAccountName: storage.outputs.name
    deadLetterContainerName: blobEventsDeadLetterContainerName
  }
  dependsOn: [
    rbac
  ]
}

// Operators: workbook, alert rules and the DCR's error logs; their queries come from queries/relay.kql.
module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceId: monitoring.outputs.logAnalyticsId
    namePrefix: 'relay-${resourceToken}'
    actionGroupId: alertActionGroupId
    parkedAgeMinutes: parkedAgeAlertMinutes
  }
}

module dcrDiagnostics 'app/dcr-diagnostics.bicep' = {
  name: 'dcr-diagnostics'
  scope: rg
  params: {
    dataCollectionRuleName: ingestion.outputs.dataCollectionRuleName
    workspaceId: monitoring.outputs.logAnalyticsId
  }
}

// azd stores these in .azure/<env>/.env: `azd env get-values` feeds `relay validate` and local runs.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CLIENT_ID string = identity.outputs.clientId
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsCustomerId
output LOGS_INGESTION_ENDPOINT string = ingestion.outputs.logsIngestionEndpoint
output DCR_IMMUTABLE_ID string = ingestion.outputs.immutableId
output AZURE_DATA_COLLECTION_RULE_ID string = ingestion.outputs.dataCollectionRuleId
output RELAY_CLOUD string = relayCloud
output RELAY_BLOB_CONTAINER string = blobContainerName
output RELAY_EVENTHUB_NAME string = eventHubs.outputs.eventHubName
output RELAY_EVENTHUB_FULLY_QUALIFIED_NAMESPACE string = eventHubs.outputs.fullyQualifiedNamespace
output BLOB_EVENT_SUBSCRIPTION_ENABLED bool = blobEventSubscriptionEnabled
