"""The embedded default: ftserve's template provisioned into moto, its functions run in process."""
