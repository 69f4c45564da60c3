"""The venue registry: organisations, users, venues, taps, beers, devices and their secrets.

`models` is the one definition of the schema and `migrations/` its history (Alembic);
`access` holds the operations the API and the operator CLI share, `directory` what ingest
needs of it, `broker` the Mosquitto users and ACLs made from it, `hours` a venue's opening
hours. SQLite by default, any
SQLAlchemy URL (PostgreSQL) by `registry.url`.
"""
