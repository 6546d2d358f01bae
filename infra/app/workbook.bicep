// The operators' workbook: rows received / landed / rejected / parked / dead-lettered per route, upload
// latency and status classes, 403s, the poison backlog and its age, the DCR's own errors. Every chart's
// query is cut out of queries/relay.kql by its "// query: <name>" marker, so the file stays the one place.
param location string
param tags object = {}
param workspaceId string
param displayName string = 'Ingestion relay'

@description('Stable name (a GUID) so redeployments update the same workbook.')
param workbookId string = guid(resourceGroup().id, 'ingestion-relay-workbook')

var kql = loadTextContent('../../queries/relay.kql')
var cut = '\n\n\n'
var charts = [
  {
    name: 'rows-by-route'
    title: 'Rows by route and outcome (received, landed, rejected, parked, dead-lettered)'
    visualization: 'timechart'
  }
  {
    name: 'counts-add-up'
    title: 'Do the counts add up? Per route'
    visualization: 'table'
  }
  {
    name: 'upload-failures'
    title: 'Upload failures by class and status class'
    visualization: 'barchart'
  }
  {
    name: 'upload-latency'
    title: 'Upload latency per stream (ms)'
    visualization: 'timechart'
  }
  {
    name: 'forbidden'
    title: '403: Monitoring Metrics Publisher missing on the DCR'
    visualization: 'timechart'
  }
  {
    name: 'parked-waiting'
    title: 'Poison backlog: parked rows not yet replayed, per route'
    visualization: 'table'
  }
  {
    name: 'replay-lag'
    title: 'Backlog age: first failure to landed (s)'
    visualization: 'timechart'
  }
  {
    name: 'alert-parked-backlog'
    title: 'Parked batches older than an hour'
    visualization: 'table'
  }
  {
    name: 'dcr-errors'
    title: 'Errors of the DCR (DCRLogErrors)'
    visualization: 'table'
  }
]

var items = [for chart in charts: {
  type: 3
  name: chart.name
  content: {
    version: 'KqlItem/1.0'
    title: chart.title
    query: split(split(kql, '// query: ${chart.name}\n')[1], cut)[0]
    size: 0
    queryType: 0
    resourceType: 'microsoft.operationalinsights/workspaces'
    visualization: chart.visualization
  }
}]

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: workbookId
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: workspaceId
    serializedData: string({
      version: 'Notebook/1.0'
      items: concat([
        {
          type: 1
          name: 'intro'
          content: {
            json: '## Ingestion relay\nQueries from queries/relay.kql. Inspect the poison store with `relay poison stats`, `relay poison list [--deadletter]`.'
          }
        }
      ], items)
      isLocked: false
    })
  }
}

output id string = workbook.id
