"""Offline prompt-tuning of the PLM on labelled logs (LogPrompt), baselines and evaluation."""
