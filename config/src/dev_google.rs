//! A fixed, dev-only Google service account. `poindexter dev` hands its key file to the
//! clients as `GOOGLE_SERVICE_ACCOUNT_JSON`; the sandbox knows its public key and so can check
//! the signature of the JWT assertions the clients send. Never valid at Google.

pub const DEV_GOOGLE_SERVICE_ACCOUNT_EMAIL: &str =
    "poindexter-dev@poindexter-sandbox.iam.gserviceaccount.com";
pub const DEV_GOOGLE_PRIVATE_KEY_ID: &str = "sandbox-dev-key-1";

const DEV_GOOGLE_PRIVATE_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCvq/erjFuZbWQQ\n\
oDIENj0xnn1m2dJBPjPyUCL/lD/H5sdfawdHrewMwO/Us0K6vN/lxILso+sEBLzn\n\
A4Yik5BJmSmuVjdLyWpwigoXumGw1hLziymRuvIsb1aByM/O0rvGLYJyhVvkUhjT\n\
AxRX2lArqgQbjrUP8kzr9zsRHU25vY+2yt/o3u5TaIXGDMjiFQtAJiEcfaoEyGUm\n\
9IqE9T9JBhvSKD4AJW5d/4JBnkt83rWzn4fd5euTwu1fvnOo7YzEj5n0n1/9i93x\n\
CbXOAiD/2t3kYiPzPEYv3A0WlZQoUZmR3teGg56nSgrsMSNU6PQotEddDolmiSIx\n\
OILoDy0JAgMBAAECggEAELQZyyJ/7TFFE/2fc94SaH7o7pgkkVaQSuiKw2F9xQyx\n\
BWYgXZTwfm/z/fYDkMz3vxm11zlo1ct7iL3BidUdIZpiJ7UD8f1XVRcTCZmLw2w/\n\
hg/D5prvfwEhKRsGg2RvPVNDdY8voyCZQqsmyom0GMrENDiYB8mivccWwzRVmSUA\n\
M7PUuUiI4i0S4U9Cryf6daw1VQX0YIGCLccX9Ym/kqTXptf7WMxnGWCB3MAONuOa\n\
egAqOLcX6EkwbB3CbdOFGEO926cWoGISHUW2k79XQq3gHqMY6oxmkIgU/1Gxl6mm\n\
xMGagzzcMNLiZaMEuS0/cIggYXcINclp2WLwSsZ5vwKBgQDirQ+z7utKQ7qgSePw\n\
ig4eNmftO4hLXVUzoIrnLPfuXFLSbOZn3d0pf5szM2Doi7mfHxV39Sp3/GEzkjID\n\
Rv5iL2In4vE3J0Smt5ibcJ0ZpY4Wv5TxBM2InObaOuaIdI33WD5yXovNqmgyrUZV\n\
wjOs2a6tBD9EqscYvWqZPcwCGwKBgQDGZcXq60Eia2qPth6yvLDa73bigdJ+3Rt0\n\
w40p9nQJkf7in0zMI7r+XHeGcY7VDGOzu864jdOFMyN/yHzzCgBM9NJ8Yof2c5zU\n\
czrsK5DnTuorduouCWO/Hg3YsCZkMqe9+sGjwB504BS3F5CC63dSnXwrAxNvq9Av\n\
F2EkUiGfqwKBgD8QONMtgEZ8C1r207SjJARhzI4ixut4vvCLFLn2N9AX3W7vnzZ8\n\
ckBOYSZgf/CSlwTfCAEEs1kIXR6U6NcilDlKx3sjV0qp4R6k648rSHnPJnXLvStE\n\
083TISLLykFic/DBmzYEec6xPyYCMRRA4FGRilhWWyfGf3exkwupNq3LAoGAQ4tS\n\
nnAJdNZtKRAv01o6O89bAjKAn4BXYKFS5f5p8vgpdq4VT0q61u5UIwl2P0JAj2hZ\n\
MKvYX3jRlSeEopm9EHYpUv+Ymmcx9YJlhRIv+w/62WFayOGZe++XdzZBW8uDIELG\n\
uiEmPVQsuUjkgi34KcBEDcC2VUaBUgb7o4nyuJECgYAaHuKJCq0PBoFvO024aBuh\n\
ZQ3DXqo+Ey0rFNSHzTghFy/vJ9oVcGEiKtioD2HSxe3fgzjgYztfsbSM6PgvIcOv\n\
9JS1MNpUJpVKduCZ0llRck0UYqKGl+TyknxSVXg5BtgmNQP1mrS3YXpfrWiwrGm5\n\
9GWG1p81glx7l7vq50kcTA==\n\
-----END PRIVATE KEY-----\n\
";

/// The public half, for the sandbox's token endpoint.
pub const DEV_GOOGLE_PUBLIC_KEY_PEM: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr6v3q4xbmW1kEKAyBDY9\n\
MZ59ZtnSQT4z8lAi/5Q/x+bHX2sHR63sDMDv1LNCurzf5cSC7KPrBAS85wOGIpOQ\n\
SZkprlY3S8lqcIoKF7phsNYS84spkbryLG9WgcjPztK7xi2CcoVb5FIY0wMUV9pQ\n\
K6oEG461D/JM6/c7ER1Nub2Ptsrf6N7uU2iFxgzI4hULQCYhHH2qBMhlJvSKhPU/\n\
SQYb0ig+ACVuXf+CQZ5LfN61s5+H3eXrk8LtX75zqO2MxI+Z9J9f/Yvd8Qm1zgIg\n\
/9rd5GIj8zxGL9wNFpWUKFGZkd7XhoOep0oK7DEjVOj0KLRHXQ6JZokiMTiC6A8t\n\
CQIDAQAB\n\
-----END PUBLIC KEY-----\n\
";

/// The key file, in the JSON layout Google issues for service accounts.
pub fn dev_service_account_json(token_uri: &str) -> String {
    let escaped_key = DEV_GOOGLE_PRIVATE_KEY_PEM.replace('\n', "\\n");
    format!(
        concat!(
            "{{\"type\":\"service_account\",\"project_id\":\"poindexter-sandbox\",",
            "\"private_key_id\":\"{kid}\",\"private_key\":\"{key}\",",
            "\"client_email\":\"{email}\",\"client_id\":\"100000000000000000001\",",
            "\"auth_uri\":\"https://accounts.google.com/o/oauth2/auth\",",
            "\"token_uri\":\"{token_uri}\"}}"
        ),
        kid = DEV_GOOGLE_PRIVATE_KEY_ID,
        key = escaped_key,
        email = DEV_GOOGLE_SERVICE_ACCOUNT_EMAIL,
        token_uri = token_uri,
    )
}
