"""What the API and the workers share: settings, models, Redis keys, the store and events."""
