"""Long-lived work behind the endpoints: web push keys, update checker, deployment-stats cache."""
