"""Review: investigation, remediation, post-incident review and closure; keeps every timeline."""
