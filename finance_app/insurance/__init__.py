"""Export credit insurance: policies, buyer limits, declarations, claims, assignments."""
