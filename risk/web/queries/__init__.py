"""What the web pages show, read from the warehouse, one module per area: `listing` (what the alert lists
share: filters, columns, order, paging), `queue`, `search` (and its exports), `case`, `quality` and `audit`.
Scope always comes from `workflow.scope` (or `visible`), filters only from checked values bound as
parameters (risk.web.queries.listing)."""
