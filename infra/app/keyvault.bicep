// Key Vault for the relay's webhook secrets. The app reads them through Key Vault references
// (@Microsoft.KeyVault(...)) resolved with its managed identity, so the secret is in neither the
// app settings nor the deployment history, and can be rotated in Key Vault.
param name string
param location string
param tags object = {}
param githubWebhookSecretName string

@secure()
param githubWebhookSecret string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_110: purge protection would make `azd down --purge` followed by `azd up` of the same environment fail until the retention ends; the vault holds only webhook secrets, which can be re-issued.
  // checkov:skip=CKV_AZURE_42: fails for the same reason as CKV_AZURE_110 (it wants purge protection too); soft delete is on.
  // checkov:skip=CKV_AZURE_109: Key Vault references are resolved by the App Service platform, which a firewall with default Deny blocks unless the app is VNet-integrated (not in this template).
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109: the platform resolves Key Vault references over the public endpoint; access is by Entra RBAC only.
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC, not access policies: the app gets Key Vault Secrets User and nothing else.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource githubWebhookSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: githubWebhookSecretName
  // checkov:skip=CKV_AZURE_41: a webhook secret is rotated together with the sender's configuration, not on a clock; an expiry date would silently break signature checks.
  properties: {
    value: githubWebhookSecret
    contentType: 'text/plain'
  }
}

output name string = vault.name
output id string = vault.id
