"""GitHub events: routing (pure), the router's inputs, execution, the webhook receiver."""
