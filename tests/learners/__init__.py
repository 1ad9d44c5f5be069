"""Learners' answers written as a learner would write them (source text, planted in scratch workspaces)."""
