"""The experiments app: a package per side of the product (rating, recruiting, dashboard, api)
over the services they share, the data model, and simulated raters; docs/architecture.md."""
