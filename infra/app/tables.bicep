// The custom tables of the DCR's Custom- output streams, each with the plan and retention its
// entry in the table plans file gives (infra/dcr/relay.tables.json; shared/tables.py checks it).
// Deployed at the workspace's resource group, which may be another one than the relay's (an
// existing workspace, e.g. Microsoft Sentinel's).
param workspaceName string

@description('Contents of the DCR definition file (its dataFlows name the tables).')
param dcrDefinition object

@description('Table name -> {plan, retentionInDays, totalRetentionInDays}; a table not listed is Analytics with the workspace retention.')
param tablePlans object = {}

@description('Table name -> columns, for tables whose data flow transform changes the columns.')
param tableColumnOverrides object = {}

var customStreamPrefix = 'Custom-'
// -1: the workspace's default retention.
var defaultTablePlan = {
  plan: 'Analytics'
  retentionInDays: -1
  totalRetentionInDays: -1
}

// Flows into Microsoft- tables write to tables Azure already has; only Custom- ones need a table.
var customTableFlows = filter(dcrDefinition.properties.dataFlows, flow => startsWith(flow.outputStream, customStreamPrefix))

var customTables = [for flow in customTableFlows: {
  name: substring(flow.outputStream, length(customStreamPrefix))
  settings: union(defaultTablePlan, contains(tablePlans, substring(flow.outputStream, length(customStreamPrefix))) ? tablePlans[substring(flow.outputStream, length(customStreamPrefix))] : {})
  columns: contains(tableColumnOverrides, substring(flow.outputStream, length(customStreamPrefix))) ? tableColumnOverrides[substring(flow.outputStream, length(customStreamPrefix))] : dcrDefinition.properties.streamDeclarations[flow.streams[0]].columns
}]

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource tables 'Microsoft.OperationalInsights/workspaces/tables@2023-09-01' = [for table in customTables: {
  parent: workspace
  name: table.name
  properties: {
    plan: table.settings.plan
    retentionInDays: table.settings.retentionInDays
    totalRetentionInDays: table.settings.totalRetentionInDays
    schema: {
      name: table.name
      columns: table.columns
    }
  }
}]
