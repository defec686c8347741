-- Staff read deliveries by outcome (GET /v1/webhooks/test-deliveries lists the providers'
-- test deliveries) without scanning every delivery ever received.
CREATE INDEX webhook_deliveries_outcome ON webhook_deliveries (outcome, received_at, id);
