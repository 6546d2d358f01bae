# azd postdeploy hook (Windows): same as postdeploy.sh - create the Event Grid subscription of the
# blob trigger once blob_ingest is deployed, because Event Grid validates the webhook on creation.
$ErrorActionPreference = 'Stop'

if ($env:BLOB_EVENT_SUBSCRIPTION_ENABLED -eq 'true') {
    exit 0
}

Write-Host 'postdeploy: creating the Event Grid subscription of blob_ingest (second provision)'
azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true
azd provision --no-prompt
if ($LASTEXITCODE -ne 0) {
    # Leave the flag off so the next `azd up` tries again instead of skipping the subscription.
    azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED false
    exit 1
}
