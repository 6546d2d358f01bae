// Log Analytics (destination of the DCR and of Application Insights) and Application Insights
// (the relay's own telemetry). Both refuse keys: callers authenticate with Entra ID.
param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object = {}
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
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

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Telemetry must carry an Entra token of an identity with Monitoring Metrics Publisher here.
    DisableLocalAuth: true
  }
}

output logAnalyticsName string = logAnalytics.name
output logAnalyticsId string = logAnalytics.id
output logAnalyticsCustomerId string = logAnalytics.properties.customerId
output applicationInsightsName string = applicationInsights.name
