// Event Hubs namespace, the hub the relay reads and the relay's own consumer group.
param namespaceName string
param location string
param tags object = {}
param eventHubName string
param consumerGroupName string
param partitionCount int = 4

@description('Days events stay readable: time to fix a failing relay before events expire unread.')
param messageRetentionInDays int = 7

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    // Standard: Basic has no consumer groups besides $Default and keeps events one day only.
    name: 'Standard'
    tier: 'Standard'
    capacity: 1
  }
  properties: {
    // Entra ID only: producers and the relay get data roles, no SAS keys exist to leak.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource eventHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: eventHub
  name: consumerGroupName
}

output namespaceName string = namespace.name
output eventHubName string = eventHub.name
output consumerGroupName string = consumerGroup.name
// "<namespace>.servicebus.windows.net" in the public cloud; taken from the namespace's own
// endpoint (https://<host>:443/) so it carries the right suffix in sovereign clouds.
output fullyQualifiedNamespace string = split(split(split(namespace.properties.serviceBusEndpoint, '//')[1], '/')[0], ':')[0]
