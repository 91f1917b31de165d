"""The alert engine: rules evaluated against the store, penalties, delivery, history.

Modules, one idea each:
- areas: what a rule can watch, and where each value comes from
- rules: validation of rules as people write them (forms, TOML), save_rule, save_template
- evaluation: the state machine of one rule for one subject (pure)
- values: one round's values, read in bulk
- templates: sandboxed Jinja2 texts, rendered apart within bounds
- bounded: outside code (templates, scripts) run in a child process within time and memory
- recipients: email, SMS or apprise, per recipient
- messages: a rule's messages for an event; send_test
- penalties: disable an account for a time through the feed, and re-enable it on time
- delivery, senders: the outbox worker, and sending by SMTP or apprise
- reports: scheduled daily summaries per account
- scripts: script areas' plug-in module (trusted code)
- exchange: TOML import and export
- settings: the [alerts] and [email] sections of the config file
- engine: AlertEngine, which runs all of it in the writer process

The console reads through store.alerting.AlertData and writes through store.alerting's small
actions (acknowledge, silences, tags) and the rules module here.
"""
