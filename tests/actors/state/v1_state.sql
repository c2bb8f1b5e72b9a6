-- A state database as the SQLite store wrote it before PostgreSQL was served (schema
-- version 1), dumped by sqlite3's iterdump: tests/actors/state/test_schema.py migrates it.
BEGIN TRANSACTION;
CREATE TABLE balances (asset TEXT PRIMARY KEY, amount REAL NOT NULL);
INSERT INTO "balances" VALUES('USDT',6997.0);
INSERT INTO "balances" VALUES('BTC',0.1);
CREATE TABLE equity (ts_ms INTEGER PRIMARY KEY, equity REAL NOT NULL);
INSERT INTO "equity" VALUES(1700000000000,10000.0);
CREATE TABLE fills (
    fill_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    pair TEXT NOT NULL,
    side TEXT NOT NULL,
    amount REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL,
    ts_ms INTEGER NOT NULL,
    maker INTEGER NOT NULL
);
INSERT INTO "fills" VALUES('f-2','o-1','BTC/USDT','buy',0.06,30000.0,1.8,1700000000050,0);
INSERT INTO "fills" VALUES('f-1','o-1','BTC/USDT','buy',0.04,30000.0,1.2,1700000000100,1);
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
INSERT INTO "meta" VALUES('quote','USDT');
INSERT INTO "meta" VALUES('initial_balances','{"USDT": 10000.0}');
INSERT INTO "meta" VALUES('peak_equity',10050.5);
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    pair TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    amount REAL NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    limit_price REAL,
    filled REAL NOT NULL,
    average_price REAL NOT NULL,
    fee REAL NOT NULL,
    reject_reason TEXT NOT NULL
);
INSERT INTO "orders" VALUES('o-1','BTC/USDT','buy','market','entry',0.1,'filled',1700000000000,1700000000100,NULL,0.1,30000.0,3.0,'');
INSERT INTO "orders" VALUES('o-2','ETH/USDT','buy','limit','entry',1.0,'open',1700000001000,1700000001000,2000.0,0.0,0.0,0.0,'');
CREATE TABLE pnl (pair TEXT PRIMARY KEY, realized REAL NOT NULL, trades INTEGER NOT NULL);
INSERT INTO "pnl" VALUES('BTC/USDT',0.0,0);
CREATE TABLE positions (
    pair TEXT PRIMARY KEY,
    amount REAL NOT NULL,
    entry_price REAL NOT NULL,
    cost REAL NOT NULL,
    opened_ms INTEGER NOT NULL,
    peak_price REAL NOT NULL,
    trip_pnl REAL NOT NULL DEFAULT 0
);
INSERT INTO "positions" VALUES('BTC/USDT',0.1,30000.0,3003.0,1700000000000,30500.0,0.0);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO "schema_version" VALUES(1);
CREATE TABLE strategies (
    pair TEXT PRIMARY KEY, spec TEXT NOT NULL, generation INTEGER NOT NULL
);
INSERT INTO "strategies" VALUES('BTC/USDT','{"members": [], "params": [["fast", 5], ["slow", 20]], "path": "ema_cross"}',1);
CREATE INDEX orders_by_status ON orders (status, updated_ms);
COMMIT;
