"""The generation pipelines and the latent helpers they share."""
