from shared.bus.base import Bus, BusUnavailable, Consumer, Record, TopicPartition, TopicSpec, partition_for

__all__ = ["Bus", "BusUnavailable", "Consumer", "Record", "TopicPartition", "TopicSpec", "partition_for"]
