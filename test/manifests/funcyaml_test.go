package manifests

// funcYAML is func.yaml as the func CLI of tag knative-v1.22.2 describes
// it in its schema (schema/func_yaml-schema.json): every property of that
// schema, with the same names, so that strict decoding rejects anything
// func would not read. Two departures from the schema, both deliberate:
// the schema's enum for build.builder predates the host builder (func
// accepts "host", "pack" and "s2i"), and run.startTimeout is a Go
// time.Duration there, written as an integer of nanoseconds.
type funcYAML struct {
	SpecVersion      string         `json:"specVersion"`
	Name             string         `json:"name,omitempty"`
	Domain           string         `json:"domain,omitempty"`
	Runtime          string         `json:"runtime,omitempty"`
	Registry         string         `json:"registry,omitempty"`
	RegistryInsecure bool           `json:"registryInsecure,omitempty"`
	Image            string         `json:"image,omitempty"`
	Namespace        string         `json:"namespace,omitempty"`
	Created          string         `json:"created"`
	Invoke           string         `json:"invoke,omitempty"`
	Build            funcBuildSpec  `json:"build,omitempty"`
	Run              funcRunSpec    `json:"run,omitempty"`
	Deploy           funcDeploySpec `json:"deploy,omitempty"`
}

// funcBuildSpec is func.yaml's build section.
type funcBuildSpec struct {
	Git                *funcGit          `json:"git,omitempty"`
	BuilderImages      map[string]string `json:"builderImages,omitempty"`
	Buildpacks         []string          `json:"buildpacks,omitempty"`
	Builder            string            `json:"builder,omitempty"`
	BuildEnvs          []funcEnv         `json:"buildEnvs,omitempty"`
	PVCSize            string            `json:"pvcSize,omitempty"`
	RemoteStorageClass string            `json:"remoteStorageClass,omitempty"`
	BaseImage          string            `json:"baseImage,omitempty"`
	Volumes            []funcMountSpec   `json:"volumes,omitempty"`
}

// funcGit is the git repository a function may be built from.
type funcGit struct {
	URL        string `json:"url,omitempty"`
	Revision   string `json:"revision,omitempty"`
	ContextDir string `json:"contextDir,omitempty"`
}

// funcMountSpec is a host path mounted into a build.
type funcMountSpec struct {
	HostPath string `json:"hostPath"`
	Path     string `json:"path"`
}

// funcRunSpec is func.yaml's run section. Its envs are used by both
// `func run` and `func deploy`.
type funcRunSpec struct {
	Volumes      []funcVolume `json:"volumes,omitempty"`
	Envs         []funcEnv    `json:"envs,omitempty"`
	StartTimeout int64        `json:"startTimeout,omitempty"`
}

// funcEnv is one environment entry; a nil name imports a whole ConfigMap
// or Secret.
type funcEnv struct {
	Name  *string `json:"name,omitempty"`
	Value *string `json:"value,omitempty"`
}

// funcVolume is a volume mounted into the deployed function.
type funcVolume struct {
	Secret                *string               `json:"secret,omitempty"`
	ConfigMap             *string               `json:"configMap,omitempty"`
	PersistentVolumeClaim *funcPersistentVolume `json:"persistentVolumeClaim,omitempty"`
	EmptyDir              *funcEmptyDir         `json:"emptyDir,omitempty"`
	Path                  *string               `json:"path,omitempty"`
}

// funcPersistentVolume names a claim to mount.
type funcPersistentVolume struct {
	ClaimName *string `json:"claimName,omitempty"`
	ReadOnly  bool    `json:"readOnly,omitempty"`
}

// funcEmptyDir is a scratch volume.
type funcEmptyDir struct {
	Medium    string  `json:"medium,omitempty"`
	SizeLimit *string `json:"sizeLimit,omitempty"`
}

// funcDeploySpec is func.yaml's deploy section.
type funcDeploySpec struct {
	Namespace          string                    `json:"namespace,omitempty"`
	Image              string                    `json:"image,omitempty"`
	Annotations        map[string]string         `json:"annotations,omitempty"`
	Options            funcOptions               `json:"options,omitempty"`
	Labels             []funcLabel               `json:"labels,omitempty"`
	HealthEndpoints    funcHealthEndpoints       `json:"healthEndpoints,omitempty"`
	ServiceAccountName string                    `json:"serviceAccountName,omitempty"`
	Deployer           string                    `json:"deployer,omitempty"`
	Subscriptions      []funcKnativeSubscription `json:"subscriptions,omitempty"`
}

// funcLabel is a label func deploy puts on the Service.
type funcLabel struct {
	Key   string  `json:"key"`
	Value *string `json:"value,omitempty"`
}

// funcHealthEndpoints are the probe paths func deploy sets.
type funcHealthEndpoints struct {
	Liveness  string `json:"liveness,omitempty"`
	Readiness string `json:"readiness,omitempty"`
}

// funcKnativeSubscription is a Trigger func deploy creates.
type funcKnativeSubscription struct {
	Source  string            `json:"source"`
	Filters map[string]string `json:"filters,omitempty"`
}

// funcOptions are the scale and resource options of the deployed Service.
type funcOptions struct {
	Scale     *funcScaleOptions     `json:"scale,omitempty"`
	Resources *funcResourcesOptions `json:"resources,omitempty"`
}

// funcScaleOptions become the Service's autoscaling annotations.
type funcScaleOptions struct {
	Min         *int64   `json:"min,omitempty"`
	Max         *int64   `json:"max,omitempty"`
	Metric      *string  `json:"metric,omitempty"`
	Target      *float64 `json:"target,omitempty"`
	Utilization *float64 `json:"utilization,omitempty"`
}

// funcResourcesOptions become the container's resources and the
// revision's containerConcurrency.
type funcResourcesOptions struct {
	Requests *funcResourcesRequests `json:"requests,omitempty"`
	Limits   *funcResourcesLimits   `json:"limits,omitempty"`
}

// funcResourcesRequests are the container's resource requests.
type funcResourcesRequests struct {
	CPU    *string `json:"cpu,omitempty"`
	Memory *string `json:"memory,omitempty"`
}

// funcResourcesLimits are the container's resource limits and the
// revision's containerConcurrency.
type funcResourcesLimits struct {
	CPU         *string `json:"cpu,omitempty"`
	Memory      *string `json:"memory,omitempty"`
	Concurrency *int64  `json:"concurrency,omitempty"`
}
