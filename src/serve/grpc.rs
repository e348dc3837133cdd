//! The gRPC transport (tonic): TensorFlow Serving's `tensorflow.serving.PredictionService`
//! and `tensorflow.serving.ModelService`. Every call runs [`super::core::Core`] on the
//! blocking pool, exactly as the REST transport does; errors keep their canonical code, which
//! is the gRPC status code.

use std::future::Future;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::core::{Core, ServeError};
use super::metrics::Entrypoint;
use crate::proto::tensorflow::error::Code;
use crate::proto::tensorflow::serving as sv;
use sv::model_service_server::{ModelService, ModelServiceServer};
use sv::prediction_service_server::{PredictionService, PredictionServiceServer};

/// gRPC settings.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// Largest request message accepted; larger ones get RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
}

impl Default for GrpcOptions {
    fn default() -> Self {
        GrpcOptions {
            max_message_bytes: 64 << 20,
        }
    }
}

/// The gRPC status of a request error: TF Serving's code and message.
pub fn status(e: ServeError) -> Status {
    Status::new(tonic::Code::from_i32(e.code as i32), e.message)
}

/// Both services, on one core.
#[derive(Clone)]
pub struct Services {
    core: Arc<Core>,
}

impl Services {
    pub fn new(core: Arc<Core>) -> Self {
        Services { core }
    }

    /// Runs `f` on the blocking pool (it may run TensorFlow) with one log line per call.
    async fn call<Q, A>(
        &self,
        method: &'static str,
        request: Request<Q>,
        f: fn(&Core, &Q) -> Result<A, ServeError>,
    ) -> Result<Response<A>, Status>
    where
        Q: Send + 'static,
        A: Send + 'static,
    {
        let started = std::time::Instant::now();
        let core = self.core.clone();
        let request = request.into_inner();
        let result = tokio::task::spawn_blocking(move || f(&core, &request))
            .await
            .unwrap_or_else(|e| {
                Err(ServeError::new(
                    Code::Internal,
                    format!("request handler failed: {e}"),
                ))
            });
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(e) => e.code,
        };
        tracing::info!(
            target: "smtool::serve::request",
            "gRPC {method} {} {:.3}ms",
            code.as_str_name(),
            started.elapsed().as_secs_f64() * 1e3
        );
        result.map(Response::new).map_err(status)
    }
}

#[tonic::async_trait]
impl PredictionService for Services {
    async fn classify(
        &self,
        request: Request<sv::ClassificationRequest>,
    ) -> Result<Response<sv::ClassificationResponse>, Status> {
        self.call("Classify", request, |core, r| {
            core.classify_from(Entrypoint::Grpc, r)
        })
        .await
    }

    async fn regress(
        &self,
        request: Request<sv::RegressionRequest>,
    ) -> Result<Response<sv::RegressionResponse>, Status> {
        self.call("Regress", request, |core, r| {
            core.regress_from(Entrypoint::Grpc, r)
        })
        .await
    }

    async fn predict(
        &self,
        request: Request<sv::PredictRequest>,
    ) -> Result<Response<sv::PredictResponse>, Status> {
        self.call("Predict", request, |core, r| {
            core.predict_from(Entrypoint::Grpc, r)
        })
        .await
    }

    async fn multi_inference(
        &self,
        request: Request<sv::MultiInferenceRequest>,
    ) -> Result<Response<sv::MultiInferenceResponse>, Status> {
        self.call("MultiInference", request, Core::multi_inference)
            .await
    }

    async fn get_model_metadata(
        &self,
        request: Request<sv::GetModelMetadataRequest>,
    ) -> Result<Response<sv::GetModelMetadataResponse>, Status> {
        self.call("GetModelMetadata", request, Core::metadata).await
    }
}

#[tonic::async_trait]
impl ModelService for Services {
    async fn get_model_status(
        &self,
        request: Request<sv::GetModelStatusRequest>,
    ) -> Result<Response<sv::GetModelStatusResponse>, Status> {
        self.call("GetModelStatus", request, Core::status).await
    }

    async fn handle_reload_config_request(
        &self,
        request: Request<sv::ReloadConfigRequest>,
    ) -> Result<Response<sv::ReloadConfigResponse>, Status> {
        self.call("HandleReloadConfigRequest", request, Core::reload_config)
            .await
    }
}

/// Serves both services on `listener` until `shutdown` completes; calls in flight finish
/// before it returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Arc<Core>,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let services = Services::new(core);
    let limit = options.max_message_bytes;
    tonic::transport::Server::builder()
        .add_service(
            PredictionServiceServer::new(services.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            ModelServiceServer::new(services)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(usize::MAX),
        )
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_canonical_code() {
        for (code, grpc) in [
            (Code::InvalidArgument, tonic::Code::InvalidArgument),
            (Code::NotFound, tonic::Code::NotFound),
            (Code::FailedPrecondition, tonic::Code::FailedPrecondition),
            (Code::ResourceExhausted, tonic::Code::ResourceExhausted),
            (Code::Unimplemented, tonic::Code::Unimplemented),
        ] {
            let s = status(ServeError::new(code, "why"));
            assert_eq!((s.code(), s.message()), (grpc, "why"));
        }
    }
}
