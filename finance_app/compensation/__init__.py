"""The risk compensation fund: the platform operator compensates banks for a share of the
principal lost on defaulted SME loans, within a cap per loan and a budget."""
