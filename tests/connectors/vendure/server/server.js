// A real Vendure server for Sellable's end-to-end tests, configured from the environment by
// tests/connectors/vendure/server.py. It creates its schema in an empty PostgreSQL database
// (synchronize), seeds it with Vendure's own populate/importer (initial-data.json and
// products.csv) and listens on loopback. It prints "SELLABLE-VENDURE-READY" once seeded.
// With VENDURE_POPULATE=0 it serves a database seeded before and only bootstraps.
const path = require('path');
const {
    bootstrap,
    DefaultLogger,
    LogLevel,
    dummyPaymentHandler,
} = require('@vendure/core');
const { populate } = require('@vendure/core/cli');

const env = name => {
    const value = process.env[name];
    if (value === undefined) {
        throw new Error(`missing environment variable ${name}`);
    }
    return value;
};

const config = {
    apiOptions: {
        hostname: '127.0.0.1',
        port: Number(env('VENDURE_PORT')),
        adminApiPath: 'admin-api',
        shopApiPath: 'shop-api',
    },
    authOptions: {
        // The `vendure-auth-token` header is only sent with the bearer method (the default is
        // 'cookie'): https://docs.vendure.io/current/framework/reference/typescript-api/auth/auth-options
        tokenMethod: ['bearer', 'cookie'],
        superadminCredentials: {
            identifier: env('VENDURE_SUPERADMIN'),
            password: env('VENDURE_SUPERADMIN_PASSWORD'),
        },
        requireVerification: false,
        cookieOptions: { secret: 'sellable-test' },
    },
    dbConnectionOptions: {
        type: 'postgres',
        synchronize: true,
        logging: false,
        host: env('VENDURE_DB_HOST'),
        port: Number(env('VENDURE_DB_PORT')),
        username: env('VENDURE_DB_USER'),
        password: process.env.VENDURE_DB_PASSWORD || undefined,
        database: env('VENDURE_DB_NAME'),
    },
    paymentOptions: {
        // Vendure's dev payment handler; with automaticSettle the order goes straight to
        // PaymentSettled: https://docs.vendure.io/current/framework/reference/typescript-api/payment/dummy-payment-handler
        paymentMethodHandlers: [dummyPaymentHandler],
    },
    logger: new DefaultLogger({ level: LogLevel.Warn }),
    plugins: [],
};

// VENDURE_POPULATE=0: the database is a copy of one populated before (the tests' template
// database, see vendure_server.py's create_from_template), so only bootstrap.
const started =
    process.env.VENDURE_POPULATE === '0'
        ? bootstrap(config)
        : populate(
              () => bootstrap(config),
              require(path.join(__dirname, 'initial-data.json')),
              path.join(__dirname, 'products.csv'),
          );
started
    .then(() => {
        console.log('SELLABLE-VENDURE-READY');
    })
    .catch(err => {
        console.error(err);
        process.exit(1);
    });
