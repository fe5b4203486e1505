DROP TABLE signal_deliveries;
DROP TABLE signals;
