#!/bin/sh
# azd postdeploy hook: create the Event Grid subscription of the blob trigger once the code is up.
# Event Grid checks a webhook when the subscription is created; the blobs extension of the function
# app answers that check only when blob_ingest is deployed, so the first `azd up` provisions without
# the subscription and this hook provisions again with it (see azure.yaml).
set -eu

if [ "${BLOB_EVENT_SUBSCRIPTION_ENABLED:-false}" = "true" ]; then
  exit 0
fi

echo "postdeploy: creating the Event Grid subscription of blob_ingest (second provision)"
azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true
if ! azd provision --no-prompt; then
  # Leave the flag off so the next `azd up` tries again instead of skipping the subscription.
  azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED false
  exit 1
fi
