"""Every statement of the payout service, by aggregate: `cycles` (installments, attempts,
batches, holds and cancellations), `intake_view` (the view of intake's world), `reads` (what the
API and the metrics read); the money path's statements sit next to them. The service layer
holds no SQL: it calls these on its unit of work."""
