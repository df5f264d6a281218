"""The REST API (docs/api.md): serializers (the shapes of requests and responses), views (thin,
over the services) and urls."""
