// Log Analytics (destination of the DCR and of Application Insights) and Application Insights
// (the relay's own telemetry). Both refuse keys: callers authenticate with Entra ID.
param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object = {}
param retentionInDays int = 30

@description('Resource id of an existing Log Analytics workspace (any resource group or subscription of the tenant, e.g. Microsoft Sentinel\'s). Empty: create one.')
param existingWorkspaceId string = ''

var createWorkspace = empty(existingWorkspaceId)

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = if (createWorkspace) {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Shared-key ingestion (the legacy HTTP Data Collector API) is not used: rows come through the DCR.
      disableLocalAuth: true
    }
  }
}

// The workspace in use, created or existing. When it is created the id below names it, so the
// reference is valid in both modes (ARM may evaluate both branches of a condition).
var workspaceIdParts = split(createWorkspace ? resourceId('Microsoft.OperationalInsights/workspaces', logAnalyticsName) : existingWorkspaceId, '/')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: createWorkspace ? logAnalyticsName : workspaceIdParts[8]
  scope: resourceGroup(createWorkspace ? subscription().subscriptionId : workspaceIdParts[2], createWorkspace ? resourceGroup().name : workspaceIdParts[4])
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: createWorkspace ? logAnalytics.id : existingWorkspaceId
    // Telemetry must carry an Entra token of an identity with Monitoring Metrics Publisher here.
    DisableLocalAuth: true
  }
}

// Empty for an existing workspace: nothing in this resource group may be granted on it.
output logAnalyticsName string = createWorkspace ? logAnalytics.name : ''
output logAnalyticsId string = createWorkspace ? logAnalytics.id : existingWorkspaceId
output logAnalyticsCustomerId string = createWorkspace ? logAnalytics.properties.customerId : workspace.properties.customerId
// The DCR must be in the workspace's region.
output logAnalyticsLocation string = createWorkspace ? location : workspace.location
output applicationInsightsName string = applicationInsights.name
