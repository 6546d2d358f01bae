// Log alerts of the relay, on the Log Analytics workspace that holds its Application Insights data
// (AppTraces, AppMetrics, AppRequests). Each query is cut out of queries/relay.kql (the one place the
// relay's KQL lives) by its "// query: <name>" marker, up to the next blank lines.
param location string
param tags object = {}
param workspaceId string
param namePrefix string

@description('Action group every alert notifies (resource id); empty: the alerts fire in the portal only.')
param actionGroupId string = ''

@minValue(5)
@description('A parked batch older than this many minutes (its replays still fail, or none ran) raises an alert.')
param parkedAgeMinutes int = 60

var kql = loadTextContent('../../queries/relay.kql')
var cut = '\n\n\n'
var deadLettersQuery = split(split(kql, '// query: alert-deadletters\n')[1], cut)[0]
var parkedBacklogQuery = replace(split(split(kql, '// query: alert-parked-backlog\n')[1], cut)[0],
  'let threshold_minutes = 60;', 'let threshold_minutes = ${parkedAgeMinutes};')
var forbiddenQuery = split(split(kql, '// query: alert-forbidden\n')[1], cut)[0]
var functionFailuresQuery = split(split(kql, '// query: alert-function-failures\n')[1], cut)[0]

var alerts = [
  {
    key: 'deadletters'
    displayName: 'Relay: rows dead-lettered'
    description: 'Rows went to the dead-letter container. Run: relay poison list --deadletter; relay poison show <id>; fix; relay poison redrive <id>.'
    severity: 2
    query: deadLettersQuery
    measure: 'rows'
    aggregation: 'Total'
    dimension: 'route'
    frequency: 'PT5M'
    window: 'PT15M'
  }
  {
    key: 'parked-backlog'
    displayName: 'Relay: parked backlog older than ${parkedAgeMinutes} minutes'
    description: 'A parked batch has waited longer than the threshold (replays still fail, or the poison_replay function does not run). Run: relay poison stats; relay poison list.'
    severity: 2
    query: parkedBacklogQuery
    measure: ''
    aggregation: 'Count'
    dimension: 'route'
    frequency: 'PT15M'
    window: 'PT6H'
  }
  {
    key: 'forbidden'
    displayName: 'Relay: uploads refused with 403'
    description: 'The identity lacks Monitoring Metrics Publisher on the DCR (role assignments take up to 30 minutes to propagate; 403s are replayed for RELAY_FORBIDDEN_GRACE_MINUTES, then dead-lettered).'
    severity: 1
    query: forbiddenQuery
    measure: 'requests'
    aggregation: 'Total'
    dimension: 'stream'
    frequency: 'PT5M'
    window: 'PT15M'
  }
  {
    key: 'function-failures'
    displayName: 'Relay: function invocations failed'
    description: 'A function raised to the host (storage down while parking, a blob not safe yet, a replay that could not reach storage).'
    severity: 2
    query: functionFailuresQuery
    measure: 'failures'
    aggregation: 'Total'
    dimension: 'function'
    frequency: 'PT5M'
    window: 'PT15M'
  }
]

resource rules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for alert in alerts: {
  name: '${namePrefix}-${alert.key}'
  location: location
  tags: tags
  properties: {
    displayName: alert.displayName
    description: alert.description
    severity: alert.severity
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: alert.frequency
    windowSize: alert.window
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: alert.query
          timeAggregation: alert.aggregation
          metricMeasureColumn: empty(alert.measure) ? null : alert.measure
          dimensions: [
            {
              name: alert.dimension
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: empty(actionGroupId) ? [] : [
        actionGroupId
      ]
    }
  }
}]

output alertRuleNames array = [for (alert, i) in alerts: rules[i].name]
