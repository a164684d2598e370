"""Synthetic pretraining data (PSELDNets): a large-vocabulary sound bank, one random room per mixture, FOA + MIC +
dry-sum clips in the released DataSynthSELD layout, and an adapter for that layout."""
