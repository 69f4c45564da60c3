"""The ingest worker: MQTT in, strict decoding, quality checks, InfluxDB out, ack after write."""
