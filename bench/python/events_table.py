"""Create callhook's events table on a DynamoDB (Local) endpoint, if it is not there yet.

    bench/.venv/bin/python bench/python/events_table.py --endpoint http://127.0.0.1:PORT [--table NAME]

Key: pk (S, hash) + sk (S, range), on-demand billing, as template.yaml declares it (the stream and
the TTL are not needed by ingest). Prints the table name. Idempotent.
"""

from __future__ import annotations

import argparse
import sys


def client(endpoint: str):
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def ensure_events_table(endpoint: str, table: str = "callhook-events") -> str:
    ddb = client(endpoint)
    try:
        ddb.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except ddb.exceptions.ResourceInUseException:
        pass
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Create callhook's events table (pk S + sk S).")
    parser.add_argument("--endpoint", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--table", default="callhook-events")
    args = parser.parse_args(argv)
    print(ensure_events_table(args.endpoint, args.table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
