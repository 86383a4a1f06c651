"""Amazon Selling Partner API connector for Sellable (see docs/connectors/amazon.md)."""

from sellable_amazon.connector import AmazonConnector, AmazonSettings

__all__ = ["AmazonConnector", "AmazonSettings"]
