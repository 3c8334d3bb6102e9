"""AWS plumbing and task logic shared by the Lambda functions.

Settings from the environment, connection credentials from Secrets Manager, the DynamoDB batch
ledger, S3 outputs and EventBridge notices; the GL batch tasks as plain functions.
"""
