pub mod fake_broker;
