// The Logs Ingestion side: one custom table per Custom- output stream of the DCR, the DCR
// itself (kind Direct: it has its own logs-ingestion endpoint) and, optionally, a DCE.
//
// Everything is derived from the DCR definition file (infra/dcr/relay.json), so adding a
// stream to that file and redeploying adds its table too. tests/infra evaluates this file
// and proves each table's columns equal the columns its data flow outputs.
param location string
param tags object = {}
param workspaceName string

@description('Contents of the DCR definition file: streamDeclarations, dataFlows and one logAnalytics destination whose name the data flows use.')
param dcrDefinition object

param dataCollectionRuleName string
param dataCollectionEndpointEnabled bool = false
param dataCollectionEndpointName string = ''

// Columns of tables whose data flow's transformKql changes the columns (extend, renames in a
// project): table name -> columns. Tables not listed get their input stream's columns, which is
// what `source`, `source | where ...` and a `project` of the stream's own columns output.
// tests/infra fails, naming the table, when a transform outputs other columns than the table has.
@description('Table name -> columns, for tables whose data flow transform changes the columns.')
param tableColumnOverrides object = {}

var customStreamPrefix = 'Custom-'

// Flows into Microsoft- tables write to tables Azure already has; only Custom- ones need a table.
var customTableFlows = filter(dcrDefinition.properties.dataFlows, flow => startsWith(flow.outputStream, customStreamPrefix))

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource customTables 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = [for flow in customTableFlows: {
  parent: workspace
  name: substring(flow.outputStream, length(customStreamPrefix))
  properties: {
    plan: 'Analytics'
    schema: {
      name: substring(flow.outputStream, length(customStreamPrefix))
      columns: contains(tableColumnOverrides, substring(flow.outputStream, length(customStreamPrefix))) ? tableColumnOverrides[substring(flow.outputStream, length(customStreamPrefix))] : dcrDefinition.properties.streamDeclarations[flow.streams[0]].columns
    }
  }
}]

resource dataCollectionEndpoint 'Microsoft.Insights/dataCollectionEndpoints@2023-03-11' = if (dataCollectionEndpointEnabled) {
  name: dataCollectionEndpointName
  location: location
  tags: tags
  properties: {
    description: 'Logs ingestion endpoint of the ingestion relay, for private link (attach it to an Azure Monitor Private Link Scope).'
    networkAcls: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource dataCollectionRule 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: dataCollectionRuleName
  location: location
  tags: tags
  // Direct: the rule gets its own logs-ingestion endpoint, no DCE needed.
  kind: 'Direct'
  // The file's own location and workspace are placeholders for local use: this deployment's win.
  properties: {
    description: contains(dcrDefinition.properties, 'description') ? dcrDefinition.properties.description : 'Streams of the ingestion relay.'
    dataCollectionEndpointId: dataCollectionEndpointEnabled ? dataCollectionEndpoint.id : null
    streamDeclarations: dcrDefinition.properties.streamDeclarations
    // The file's destination points at a placeholder workspace; keep its name (the data flows
    // refer to it) and aim it at this deployment's workspace.
    destinations: {
      logAnalytics: [
        {
          name: dcrDefinition.properties.destinations.logAnalytics[0].name
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: dcrDefinition.properties.dataFlows
  }
  // The service refuses a data flow whose output table does not exist yet.
  dependsOn: [
    customTables
  ]
}

output dataCollectionRuleName string = dataCollectionRule.name
output dataCollectionRuleId string = dataCollectionRule.id
output immutableId string = dataCollectionRule.properties.immutableId
// Where the relay sends: the DCE when there is one (private link), else the DCR's own endpoint.
output logsIngestionEndpoint string = dataCollectionEndpointEnabled ? dataCollectionEndpoint.properties.logsIngestion.endpoint : dataCollectionRule.properties.endpoints.logsIngestion
