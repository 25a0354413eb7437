// Package config is the typed configuration of a fedmo run: the YAML file a
// user writes, its defaults, `--set key=value` overrides, and validation.
//
// Decoding is strict: an unknown key, a value of the wrong type or a value
// out of range is an error that names the key (as a dotted path, the same
// path --set takes) and says what is allowed. Nothing here reads flags,
// files other than the one named, or the environment.
//
// docs/config.md is the reference of every key.
package config

// Config is one experiment.
type Config struct {
	Seed          uint64    `yaml:"seed"`          // the run seed; every random stream derives from it
	Rounds        int       `yaml:"rounds"`        // R, communication rounds
	Clients       int       `yaml:"clients"`       // N, virtual clients
	Participation int       `yaml:"participation"` // S, clients sampled per round (uniform, without replacement)
	Data          Data      `yaml:"data"`
	Model         Model     `yaml:"model"`
	Local         Local     `yaml:"local"`
	Algorithm     Algorithm `yaml:"algorithm"`
	Server        Server    `yaml:"server"`
	Eval          Eval      `yaml:"eval"`
}

// Data selects the dataset and its partition across clients.
type Data struct {
	Name            string    `yaml:"name"`              // mnist | synthetic | npy
	Dir             string    `yaml:"dir"`               // mnist: IDX files ("" = the GoMNIST module's); npy: train_x.npy, ...
	Partition       string    `yaml:"partition"`         // iid | dirichlet | dirichlet-client | shards | quantity | natural | file | similarity
	Alpha           float64   `yaml:"alpha"`             // Dirichlet concentration
	MinSize         int       `yaml:"min_size"`          // dirichlet: resample until every client has this many rows
	ShardsPerClient int       `yaml:"shards_per_client"` // shards: shards per client
	Sigma           float64   `yaml:"sigma"`             // quantity: lognormal sigma of client sizes
	PartitionFile   string    `yaml:"partition_file"`    // file: JSON list of index lists
	Similarity      float64   `yaml:"similarity"`        // similarity: the iid share s of every client's rows (0 = sorted by label, 1 = iid)
	Synthetic       Synthetic `yaml:"synthetic"`
}

// Synthetic is FedProx's Synthetic(alpha, beta) generator.
type Synthetic struct {
	Alpha float64 `yaml:"alpha"` // std of u_k (model heterogeneity)
	Beta  float64 `yaml:"beta"`  // std of B_k (feature heterogeneity)
	IID   bool    `yaml:"iid"`   // one shared model, zero-mean features
}

// Model selects the objective.
type Model struct {
	Name   string  `yaml:"name"`   // softmax | mlp
	Hidden []int   `yaml:"hidden"` // mlp: hidden layer widths
	Init   string  `yaml:"init"`   // zeros | glorot | he
	L2     float64 `yaml:"l2"`     // softmax: L2 weight on W
}

// Local is the clients' local work.
type Local struct {
	Steps    int     `yaml:"steps"`    // K local steps per round
	Batch    int     `yaml:"batch"`    // B; 0 = the whole local shard (deterministic gradients)
	LR       float64 `yaml:"lr"`       // eta
	Momentum float64 `yaml:"momentum"` // plain local heavy-ball SGD (a different algorithm from FedAvg-M); 0 = off
}

// Algorithm selects the federated algorithm and its client-side options.
type Algorithm struct {
	Name      string   `yaml:"name"`      // fedavg | scaffold
	Option    string   `yaml:"option"`    // scaffold control-variate update: I | II
	Momentum  Momentum `yaml:"momentum"`  // client-side momentum (Cheng et al.)
	ProxMu    float64  `yaml:"prox_mu"`   // FedProx proximal term (fedavg)
	Weighting string   `yaml:"weighting"` // uniform | samples
}

// Momentum is Cheng et al.'s client-side momentum.
type Momentum struct {
	Beta float64 `yaml:"beta"` // weight of the FRESH gradient; 1 = off
	VR   bool    `yaml:"vr"`   // variance-reduced variants (FedAvg-M-VR, SCAFFOLD-M-VR)
}

// Server is the server optimizer.
type Server struct {
	LR        float64 `yaml:"lr"`        // eta_g on the model scale; 1 = plain averaging
	Optimizer string  `yaml:"optimizer"` // sgd | adam | yogi | adagrad
	Momentum  float64 `yaml:"momentum"`  // sgd: heavy-ball beta_s on the old buffer
	Nesterov  bool    `yaml:"nesterov"`  // sgd: Nesterov form
	Beta1     float64 `yaml:"beta1"`     // adaptive: first-moment decay
	Beta2     float64 `yaml:"beta2"`     // adam, yogi: second-moment decay
	Tau       float64 `yaml:"tau"`       // adaptive: adaptivity, v starts at tau^2
}

// Eval says when the global model is evaluated.
type Eval struct {
	Every     int  `yaml:"every"`      // evaluate on the test set every this many rounds (and after the last)
	TrainLoss bool `yaml:"train_loss"` // also compute the global training loss at those rounds
}

// Default returns the defaults that a config file overrides.
func Default() Config {
	return Config{
		Seed: 1, Rounds: 100, Clients: 100, Participation: 10,
		Data:  Data{Name: "mnist", Partition: "dirichlet", Alpha: 0.1, MinSize: 10, ShardsPerClient: 2, Sigma: 1, Synthetic: Synthetic{Alpha: 1, Beta: 1}},
		Model: Model{Name: "mlp", Hidden: []int{200}, Init: "glorot"},
		Local: Local{Steps: 10, Batch: 32, LR: 0.05},
		Algorithm: Algorithm{Name: "fedavg", Option: "II", Momentum: Momentum{Beta: 1},
			Weighting: "uniform"},
		Server: Server{LR: 1, Optimizer: "sgd", Beta1: 0.9, Beta2: 0.99, Tau: 1e-3},
		Eval:   Eval{Every: 5},
	}
}
