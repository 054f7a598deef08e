"""Which failures the consumer retries however often they repeat: outages, not the message's faults."""

from confluent_kafka import KafkaError, KafkaException
from pymongo.errors import AutoReconnect, ExecutionTimeout, OperationFailure, ServerSelectionTimeoutError

from services.kernel.consumer import is_outage


def test_a_store_or_broker_that_is_away_is_an_outage():
    assert is_outage(ServerSelectionTimeoutError("no servers")) and is_outage(AutoReconnect("reset"))
    assert is_outage(TimeoutError()) and is_outage(KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN)))
    assert is_outage(ExecutionTimeout("operation exceeded time limit", code=50))


def test_a_refusal_that_would_repeat_for_the_same_message_is_no_outage():
    assert not is_outage(KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)))
    assert not is_outage(OperationFailure("document failed validation", code=121))
