"""Invoice payments: `messages` (JSON and Zynk XML into payments), `settle` (each invoice
brought to its amount on ConnectWise, under the payment ledger), `outcomes`, `results` (files
and events) and `upload` (a batch of SQS messages, end to end)."""
