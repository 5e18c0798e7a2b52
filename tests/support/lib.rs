//! Harness for Sluice's end-to-end tests: start real `sluiced` processes on ephemeral ports in temp
//! dirs, run the CLI and real Kafka clients against them, and wait on conditions with deadlines.
