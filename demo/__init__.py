"""The product end to end: replay logs into Kafka, the one-command demo, and the report."""
