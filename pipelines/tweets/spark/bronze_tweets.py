"""The tweets bronze layer as a Spark job (the spark_job entry of pipeline.yml, on LAKEHOUSE_ENGINE=spark):
the day's TSV export typed into raw.tweets by the executors, bad lines to quarantine.rejected_tweets,
under exactly the rules of the delimited_file entry, whose options arrive as --file.
--split-bytes: bytes of the file per task (default lakehouse.spark.delimited.SPLIT_BYTES)."""

import json

from lakehouse.spark import delimited, job

if __name__ == "__main__":
    args = job.arguments(extra=["--file", "--split-bytes"])
    split = int(args.split_bytes) if args.split_bytes else delimited.SPLIT_BYTES
    delimited.land(job.session(), args, json.loads(args.file), split_bytes=split)
