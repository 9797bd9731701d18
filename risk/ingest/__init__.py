"""The loading stage: from a delivery day's files in the landing folder to facts in the warehouse.

- `read`: one delivered file into text columns with their line numbers, or refused whole with a reason;
- `checks`: each row against its source's Great Expectations suite (checks/*.json, built from the contract);
- `keys`: the good rows into the warehouse by the contract's keys (re-deliveries, conflicts, upserts);
- `quality`: the quality queue, the per-file ledger and the data-quality report;
- `delivery`: which days are waiting, and loading one day in one transaction.

`risk.pipeline` puts this stage before detection and scoring; nothing here knows about alerts.
"""
