// The DCR's own error logs (category LogErrors -> table DCRLogErrors: transformation errors and rows the
// service refused after answering 204) go to the relay's workspace, where queries/relay.kql query
// "dcr-errors" and the workbook read them. Without this setting those errors are invisible.
param dataCollectionRuleName string
param workspaceId string

resource dataCollectionRule 'Microsoft.Insights/dataCollectionRules@2023-03-11' existing = {
  name: dataCollectionRuleName
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'relay-dcr-errors'
  scope: dataCollectionRule
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'LogErrors'
        enabled: true
      }
    ]
  }
}

output name string = diagnostics.name
