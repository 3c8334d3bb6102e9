"""What every task stands on: settings, secrets and clients per connection, the DynamoDB ledgers
(versioned writes), the S3 key layout and store, EventBridge notices, the DLQ, observability."""
