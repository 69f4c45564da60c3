"""Time series: what Tapsense writes to InfluxDB and reads back from it.

`lineproto` is the one definition of the measurements (line protocol, pure), `influx` the
transports (v1 HTTP `/write` and `/query`, the v2 write API) and InfluxQL queries, `events`
the plain quality-event types, `settings` where InfluxDB is. The API, alerts, reports and
coupons read InfluxDB through this package; none of it loads the quality kernels.
"""
