// The Logs Ingestion side: one custom table per Custom- output stream of the DCR (app/tables.bicep), the DCR
// itself (kind Direct: it has its own logs-ingestion endpoint) and, optionally, a DCE.
//
// Everything is derived from the DCR definition file (infra/dcr/relay.json), so adding a
// stream to that file and redeploying adds its table too. tests/infra evaluates this file
// and proves each table's columns equal the columns its data flow outputs.
// The DCR's location: it must be the workspace's region (the seeds: "This must match the region of
// the Log Analytics workspace and the DCE if you're using one"); main.bicep passes the workspace's.
param location string
param tags object = {}

@description('Resource id of the Log Analytics workspace the tables and the DCR destination live in; it may be in another resource group or subscription.')
param workspaceId string

@description('Contents of the DCR definition file: streamDeclarations, dataFlows and one logAnalytics destination whose name the data flows use.')
param dcrDefinition object

@description('Table name -> {plan, retentionInDays, totalRetentionInDays}: the table plans file beside the DCR file.')
param tablePlans object = {}

param dataCollectionRuleName string
param dataCollectionEndpointEnabled bool = false
param dataCollectionEndpointName string = ''

// Columns of tables whose data flow's transformKql changes the columns (extend, renames in a
// project): table name -> columns. Tables not listed get their input stream's columns, which is
// what `source`, `source | where ...` and a `project` of the stream's own columns output.
// tests/infra fails, naming the table, when a transform outputs other columns than the table has.
@description('Table name -> columns, for tables whose data flow transform changes the columns.')
param tableColumnOverrides object = {}

// /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{name}
var workspaceIdParts = split(workspaceId, '/')

// The tables go where the workspace is, with their plans (app/tables.bicep).
module tables 'tables.bicep' = {
  name: 'relay-tables'
  scope: resourceGroup(workspaceIdParts[2], workspaceIdParts[4])
  params: {
    workspaceName: workspaceIdParts[8]
    dcrDefinition: dcrDefinition
    tablePlans: tablePlans
    tableColumnOverrides: tableColumnOverrides
  }
}

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
          workspaceResourceId: workspaceId
        }
      ]
    }
    dataFlows: dcrDefinition.properties.dataFlows
  }
  // The service refuses a data flow whose output table does not exist yet.
  dependsOn: [
    tables
  ]
}

output dataCollectionRuleName string = dataCollectionRule.name
output dataCollectionRuleId string = dataCollectionRule.id
output immutableId string = dataCollectionRule.properties.immutableId
// Where the relay sends: the DCE when there is one (private link), else the DCR's own endpoint.
output logsIngestionEndpoint string = dataCollectionEndpointEnabled ? dataCollectionEndpoint.properties.logsIngestion.endpoint : dataCollectionRule.properties.endpoints.logsIngestion
